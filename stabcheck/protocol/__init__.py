"""What crosses the process boundary between stabcheck and its workers: message kinds
and their fields, the worker's init, the prepared data set. Standard library and numpy only."""
