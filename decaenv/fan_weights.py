"""face_alignment's weight files: the URLs (so the file names) the installed face_alignment downloads for DECA's
2D FAN landmarker and its S3FD detector. Read by the runtime's FAN detector and the synthetic FAN writer;
imports face_alignment (and torch) only when asked.
"""

from __future__ import annotations

from typing import Dict

LANDMARKS_NETWORK = "2DFAN-4"


def _torch_series(version: str) -> str:
    """torch's version as face_alignment 1.3.5-1.4.x keys its model tables ("2.13.0+cpu" -> "2.13")."""
    return version.rsplit(".", 2)[0] if "dev" in version else version.rsplit(".", 1)[0]


def required_weight_urls() -> Dict[str, str]:
    """{"landmarks": url, "detector": url} the installed face_alignment downloads for a 2D FAN, chosen exactly
    as it chooses: 1.5+ `models_urls[...]`; 1.3.5-1.4.x `models_urls.get(<torch major.minor>,
    default_model_urls)[...]`; S3FD from its detector's `models_urls["s3fd"]`."""
    import face_alignment.api as api
    from face_alignment.detection.sfd import sfd_detector

    if hasattr(api, "default_model_urls"):
        import torch

        table = api.models_urls.get(_torch_series(torch.__version__), api.default_model_urls)
    else:
        table = api.models_urls
    return {"landmarks": table.get(LANDMARKS_NETWORK, ""),
            "detector": getattr(sfd_detector, "models_urls", {}).get("s3fd", "")}
