"""Pure decisions over plain data: no I/O, no clients, easy to test."""
