#!/usr/bin/python3
"""Validates ONNX files with the reference checker (Debian's python3-onnx: apt-get install python3-onnx).

Usage: /usr/bin/python3 test/tools/check-onnx.py DIR/model.onnx [more.onnx ...]
An independent check that our onnx-proto writer emits valid IR 8 / opset 17 graphs.
"""
import sys

import onnx

failed = 0
for path in sys.argv[1:]:
    model = onnx.load(path)
    try:
        onnx.checker.check_model(model, full_check=True)
        print(f"ok   {path} (ir {model.ir_version}, opset {model.opset_import[0].version})")
    except Exception as error:  # noqa: BLE001 - report every file, then fail
        failed += 1
        print(f"FAIL {path}: {str(error).splitlines()[0]}")
sys.exit(1 if failed else 0)
