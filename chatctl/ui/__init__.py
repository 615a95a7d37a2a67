"""Terminal UI: the only package that knows about Rich, prompt_toolkit, colours and prompts."""
