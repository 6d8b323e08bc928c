"""Resume keys: a study is done when a report exists for the same images, request and configuration.

The key hashes the bytes of the images (not their paths: a moved or renamed
folder resumes), the study's id, task, question, specialty and hints, and the
run configuration (graph and settings). Change any of them and the study runs
again; change nothing and a rerun redoes none of it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from evlf.batch.manifest import BatchItem
from evlf.core.errors import InputError
from evlf.core.imaging.guards import sha256_file


def config_key(graph: str, settings: dict[str, Any]) -> str:
    """A digest of what decides a report besides the study: the graph and the pipeline's settings."""
    blob = json.dumps({"graph": graph, "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def image_digests(item: BatchItem) -> list[str]:
    """The sha256 of each image file; a file that cannot be read raises InputError naming it."""
    digests = []
    for path in item.images:
        try:
            digests.append(sha256_file(path))
        except FileNotFoundError:
            raise InputError(path, "no such file") from None
        except IsADirectoryError:
            raise InputError(path, "a folder, not an image file") from None
        except OSError as exc:
            raise InputError(path, f"cannot be read ({exc.strerror or exc})") from None
    return digests


def study_key(item: BatchItem, config: str) -> str:
    """The resume key of one study under one configuration digest."""
    request = item.study().model_dump(mode="json", exclude={"images"})  # what the pipeline sees, less the paths
    blob = json.dumps({"config": config, "images": image_digests(item), "request": request}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()
