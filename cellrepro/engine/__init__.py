"""Training engine: the loop every chapter trains through, and what makes it reproducible.

This half owns :func:`.train.fit` (Lightning Fabric underneath: device choice, precision,
checkpoints and exact resume), the in-memory batching (:mod:`.tensorloader`), the hardware
helpers (:mod:`.hardware`: devices, Adam, precision, timing), atomic checkpoints
(:mod:`.checkpoint`), the loss history and its finiteness checks (:mod:`.trainlog`), and the
seeded random streams that pair the arms of a comparison (:mod:`.streams`). It knows nothing of
notebooks, records or the book (:mod:`cellrepro.publish`).
"""
