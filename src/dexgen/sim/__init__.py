"""Simulation stage: the hand model, objects, batched environment, tasks, grasp cache and rendering."""
