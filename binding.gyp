{
  "targets": [
    {
      "target_name": "mmoco_native",
      "sources": [
        "native/src/addon.cc",
        "native/src/handle.cc",
        "native/src/create.cc",
        "native/src/shape.cc",
        "native/src/math.cc",
        "native/src/nn.cc",
        "native/src/grid.cc",
        "native/src/optim.cc",
        "native/src/runtime.cc",
        "native/src/dist.cc",
        "native/src/cuda.cc",
        "native/src/serialize.cc",
        "native/src/image/jpeg.cc",
        "native/src/image/color.cc",
        "native/src/image/crops.cc",
        "native/src/image/batch.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node scripts/libtorch.mjs include)"
      ],
      "libraries": ["<!@(node scripts/libtorch.mjs libs)", "-ljpeg"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": [
        "-fexceptions",
        "-frtti",
        "-O2",
        "-fno-math-errno",
        "-Wno-unused-parameter",
        "-Wno-deprecated-declarations",
        "<!@(node scripts/libtorch.mjs cflags)"
      ]
    }
  ]
}
