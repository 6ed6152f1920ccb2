"""Recurrent and plastic networks (Backpropamine), episodic tasks and A2C."""
