"""What the agent may do about an incident: the action catalogue and the autonomy policy."""
