"""Code the stack's vLLM nodes load into their own API server (never the harness's):
standard library only, so a node imports it without the harness's dependencies."""
