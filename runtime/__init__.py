"""What an expc program computes: the operators. Operator *declarations* import without torch;
heavy imports happen inside the functions (or in modules loaded only when an operator runs)."""
