"""Training and evaluation of causal language models on `TextData` (torch and transformers live here;
imported only when an operator runs)."""
