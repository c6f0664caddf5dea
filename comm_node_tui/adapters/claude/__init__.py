"""Claude Code, the agent CLI comm-node drives: its screen, its folder trust, its hook settings."""
