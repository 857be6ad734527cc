"""AddTags, ListTags and DeleteTags: tags live on the resource they describe and go when it goes."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from sagemaker_emulator.sagemaker.errors import ValidationException
from sagemaker_emulator.sagemaker.listing import page_results

MAX_TAGS_PER_RESOURCE = 50


def tag_dict(tags: list[Mapping[str, str]] | None) -> dict[str, str]:
    """A request's ``Tags`` (``[{"Key", "Value"}]``) as a dict; a later duplicate key wins, as on AWS."""
    return {tag["Key"]: tag.get("Value", "") for tag in tags or ()}


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def arn_kind_and_name(arn: str) -> tuple[str, str]:
    """``arn:aws:sagemaker:<region>:<account>:<kind>/<name>`` -> (kind, name)."""
    kind, _, name = arn.split(":", 5)[-1].partition("/")
    return kind, name


class Tagging:
    """The tag operations, over any resource that has ``arn`` and a ``tags`` dict.

    ``find(arn)`` returns the resource or raises the error AWS gives for that resource type.
    """

    def __init__(self, find: Callable[[str], Any]):
        self._find = find

    def add_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        resource = self._find(params["ResourceArn"])
        merged = {**resource.tags, **tag_dict(params["Tags"])}
        if len(merged) > MAX_TAGS_PER_RESOURCE:
            raise ValidationException(
                f"A resource can have at most {MAX_TAGS_PER_RESOURCE} tags; {params['ResourceArn']} would have "
                f"{len(merged)}. Delete some with DeleteTags first.")
        resource.tags = merged
        return {"Tags": tag_list(resource.tags)}

    def list_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        resource = self._find(params["ResourceArn"])
        page, token = page_results(tag_list(resource.tags), {k: params[k] for k in ("NextToken", "MaxResults")
                                                             if k in params}, "Key")
        return {"Tags": page, **token}

    def delete_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        resource = self._find(params["ResourceArn"])
        resource.tags = {k: v for k, v in resource.tags.items() if k not in set(params["TagKeys"])}
        return {}
