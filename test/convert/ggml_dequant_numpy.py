# An independent numpy decoder of GGUF files and the ggml block formats (written from the format
# spec, sharing no code with src/): parses the header, decodes every tensor to float32 with float32
# arithmetic in ggml's order, and writes <out>/<index>.f32 (raw little-endian) plus <out>/index.json.
# Used by test/convert/ggml-quant.test.ts to cross-check runtime/reference/ggml-dequant.ts.
import json
import struct
import sys

import numpy as np

F32 = np.float32
BLOCKS = {2: ('Q4_0', 32, 18), 3: ('Q4_1', 32, 20), 6: ('Q5_0', 32, 22), 7: ('Q5_1', 32, 24), 8: ('Q8_0', 32, 34),
          12: ('Q4_K', 256, 144), 13: ('Q5_K', 256, 176), 14: ('Q6_K', 256, 210)}


def read_header(buf):
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from('<' + fmt, buf, pos)
        pos += struct.calcsize('<' + fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take('Q')
        s = buf[pos:pos + n].decode('utf-8')
        pos += n
        return s

    scalar = {0: 'B', 1: 'b', 2: 'H', 3: 'h', 4: 'I', 5: 'i', 6: 'f', 7: '?', 10: 'Q', 11: 'q', 12: 'd'}

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et = take('I')
            return [value(et) for _ in range(take('Q'))]
        return take(scalar[t])

    assert buf[:4] == b'GGUF'
    pos = 4
    take('I')
    n_tensors, n_kv = take('Q'), take('Q')
    meta = {}
    for _ in range(n_kv):
        k = string()
        meta[k] = value(take('I'))
    infos = []
    for _ in range(n_tensors):
        name = string()
        dims = [take('Q') for _ in range(take('I'))]
        infos.append((name, dims, take('I'), take('Q')))
    align = meta.get('general.alignment', 32)
    return infos, (pos + align - 1) // align * align


def f16(raw):
    return raw.view(np.float16).astype(F32)


def scale_min_k4(s):  # s: [nb, 12] uint8 -> sc, m [nb, 8]
    sc = np.zeros((s.shape[0], 8), np.uint8)
    mn = np.zeros((s.shape[0], 8), np.uint8)
    sc[:, :4] = s[:, 0:4] & 63
    mn[:, :4] = s[:, 4:8] & 63
    sc[:, 4:] = (s[:, 8:12] & 0xF) | ((s[:, 0:4] >> 6) << 4)
    mn[:, 4:] = (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)
    return sc.astype(F32), mn.astype(F32)


def decode(kind, blk):
    nb = blk.shape[0]
    if kind == 'Q8_0':
        return f16(blk[:, 0:2].copy())[:, :1] * blk[:, 2:].view(np.int8).astype(F32)
    if kind in ('Q4_0', 'Q4_1'):
        d = f16(blk[:, 0:2].copy())
        qs = blk[:, 4:] if kind == 'Q4_1' else blk[:, 2:]
        q = np.concatenate([qs & 0xF, qs >> 4], axis=1).astype(F32)
        if kind == 'Q4_0':
            return (q - F32(8)) * d
        return q * d + f16(blk[:, 2:4].copy())
    if kind in ('Q5_0', 'Q5_1'):
        one = kind == 'Q5_1'
        d = f16(blk[:, 0:2].copy())
        qh = blk[:, 4:8] if one else blk[:, 2:6]
        qh = qh.copy().view('<u4')
        qs = blk[:, 8:] if one else blk[:, 6:]
        bits = (qh >> np.arange(32, dtype=np.uint32)) & 1
        q = (np.concatenate([qs & 0xF, qs >> 4], axis=1).astype(np.uint32) | (bits << 4)).astype(F32)
        return q * d + f16(blk[:, 2:4].copy()) if one else (q - F32(16)) * d
    if kind in ('Q4_K', 'Q5_K'):
        five = kind == 'Q5_K'
        d, dmin = f16(blk[:, 0:2].copy()), f16(blk[:, 2:4].copy())
        sc, mn = scale_min_k4(blk[:, 4:16])
        qs = blk[:, 48:] if five else blk[:, 16:]
        out = np.zeros((nb, 256), F32)
        for j in range(8):
            nib = (qs[:, 32 * (j // 2):32 * (j // 2) + 32] >> (4 * (j % 2))) & 0xF
            if five:
                nib = nib | (((blk[:, 16:48] >> j) & 1) << 4)
            out[:, 32 * j:32 * j + 32] = (d[:, 0] * sc[:, j])[:, None] * nib.astype(F32) - (dmin[:, 0] * mn[:, j])[:, None]
        return out
    if kind == 'Q6_K':
        ql, qh, sc = blk[:, 0:128], blk[:, 128:192], blk[:, 192:208].view(np.int8).astype(F32)
        d = f16(blk[:, 208:210].copy())[:, 0]
        out = np.zeros((nb, 256), F32)
        for e in range(256):
            half, r, l = e // 128, (e % 128) // 32, e % 32
            low = (ql[:, 64 * half + 32 * (r % 2) + l] >> (4 * (r // 2))) & 0xF
            high = (qh[:, 32 * half + l] >> (2 * r)) & 3
            q = (low | (high << 4)).astype(F32) - F32(32)
            out[:, e] = (d * sc[:, 8 * half + (e % 128) // 16]) * q
        return out
    raise ValueError(kind)


def main(path, out_dir):
    buf = open(path, 'rb').read()
    infos, data = read_header(buf)
    index = []
    for i, (name, dims, t, off) in enumerate(infos):
        numel = int(np.prod(dims))
        if t == 0:
            vals = np.frombuffer(buf, np.float32, numel, data + off)
        elif t == 1:
            vals = np.frombuffer(buf, np.float16, numel, data + off).astype(F32)
        elif t in BLOCKS:
            kind, be, bb = BLOCKS[t]
            raw = np.frombuffer(buf, np.uint8, numel // be * bb, data + off).reshape(-1, bb)
            vals = decode(kind, raw).reshape(-1)
        else:
            continue
        vals.astype('<f4').tofile(f'{out_dir}/{i}.f32')
        index.append({'name': name, 'file': f'{i}.f32', 'type': t})
    json.dump(index, open(f'{out_dir}/index.json', 'w'))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
