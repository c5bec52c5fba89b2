"""Runtime side of the lab: labels, EMNIST-style preprocessing and ONNX inference.

Needs numpy, Pillow and onnxruntime only; never imports torch or ``training``.
"""
