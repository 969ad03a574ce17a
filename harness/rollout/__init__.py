"""The rollout controller the stack runs (the role Flagger or Argo Rollouts play).

``signals``     what it reads: its own seeded, greedy probes and vLLM's metrics in Prometheus
``analysis``    one step's verdict: TTFT, tokens per second, error ratio, output check
``gateways``    the gateways' worker API: take a worker out or back, prove it
``controller``  rollouts, steps, decisions, shadow traffic, metrics
``server``      the HTTP API (``python -m harness.rollout``) and the analysis loop
``upgrade``     the rolling upgrade: every node onto a new revision, one at a time
"""
