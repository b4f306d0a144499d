"""The data readers, one module per kind of data spec: ``builtin`` (``builtin:NAME``),
``npz`` (a ``.npz`` of arrays), ``table`` (a ``.csv`` or ``.parquet`` file) and ``images``
(a folder with one sub-folder of images per class).

Each reader turns its kind into a ``source.Source``: the input rows, the labels as
``inputs.labels`` encodes them and a held-out split where the data brings one.
``inputs.data`` picks the reader for a spec and samples what it returns.
"""
