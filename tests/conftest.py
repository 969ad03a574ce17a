"""Shared test configuration: the llm-drill plugin is loaded through its entry point."""
