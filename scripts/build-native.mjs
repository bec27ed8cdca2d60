#!/usr/bin/env node
// Builds the native addons during `npm ci`: the CPU addon always (node-gyp); the CUDA addon only
// where nvcc exists (see native/cuda). Placeholder until the addon lands.
console.log('build-native: nothing to build yet');
