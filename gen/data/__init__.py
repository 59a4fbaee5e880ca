"""Data: MNIST's IDX files (local folder or download, checksums) and image samples.

May import: gen.core
"""
