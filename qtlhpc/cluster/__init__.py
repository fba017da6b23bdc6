"""Running qtlhpc on clusters: SLURM scripts and submission (slurm), site profiles (sites), resource plans (plan)."""

from qtlhpc.cluster.sites import Site, load_site
from qtlhpc.cluster.slurm import (
    RenderedJob,
    StageStatus,
    render_pipeline,
    resume,
    status,
    status_command,
    submit,
    submit_command,
)

__all__ = [
    "Site", "load_site", "RenderedJob", "StageStatus", "render_pipeline", "submit", "status", "resume",
    "submit_command", "status_command",
]
