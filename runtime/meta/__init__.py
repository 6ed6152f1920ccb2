"""Meta-learning through unrolled inner loops (torch.func): GTN teachers, Synthetic Petri Dishes."""
