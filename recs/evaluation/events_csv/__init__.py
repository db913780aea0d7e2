"""An events CSV (and a catalog CSV) read in chunks into integer-coded columns, for evaluation."""
