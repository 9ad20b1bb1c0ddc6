"""Multi-process runs on torch.distributed, in three parts:

- launch.py: the parent (gaverify itself). Writes a job folder, starts the
  launcher in its own session, watches the ranks, names a rank that crashed
  or hung, and leaves no process behind.
- agent.py: the launcher process: torch's elastic agent, what `torchrun`
  runs, starting W ranks with max_restarts 0.
- rank.py: one rank. Joins the process group (gloo on CPU, NCCL on CUDA),
  reports progress and a heartbeat, runs the backend's worker function and,
  on rank 0, writes the result.

The job folder is the only channel: job.json (scenario and worker), one
status file per rank, failures.json from the agent, result.json from rank 0.
"""
