"""Alarm history (moto keeps none it can answer with) and the DescribeAlarmHistory operation.

The evaluator records an item for every configuration change, state change and action, worded as
CloudWatch words them. ``handle_describe_alarm_history`` answers the one CloudWatch operation the
emulator takes before moto, in the protocol the request came in: JSON 1.0 (``X-Amz-Target:
GraniteServiceVersion20100801.DescribeAlarmHistory``, what botocore sends today) or the query
protocol (``Action=DescribeAlarmHistory``, XML answer). moto itself answers neither CBOR nor does
botocore pick it for CloudWatch while JSON is offered, so CBOR is not spoken here either.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from sagemaker_emulator.sagemaker.listing import offset_page

HISTORY_ITEM_TYPES = ("ConfigurationUpdate", "StateUpdate", "Action", "AlarmContributorStateUpdate",
                      "AlarmContributorAction")
JSON_PREFIX = "GraniteServiceVersion20100801."
XML_NAMESPACE = "http://monitoring.amazonaws.com/doc/2010-08-01/"


@dataclass(frozen=True)
class HistoryItem:
    alarm_name: str
    timestamp: datetime
    item_type: str
    summary: str
    data: str

    def as_dict(self) -> dict[str, Any]:
        return {"AlarmName": self.alarm_name, "AlarmType": "MetricAlarm", "Timestamp": self.timestamp,
                "HistoryItemType": self.item_type, "HistorySummary": self.summary, "HistoryData": self.data}


class AlarmHistory:
    """Every region's history items, in the order they happened (kept after an alarm is deleted, as
    CloudWatch keeps history for a while)."""

    def __init__(self, limit_per_region: int = 10_000):
        self._items: dict[str, list[HistoryItem]] = {}
        self._limit = limit_per_region
        self._lock = threading.Lock()

    def add(self, region: str, item: HistoryItem) -> None:
        with self._lock:
            items = self._items.setdefault(region, [])
            items.append(item)
            del items[:-self._limit]

    def query(self, region: str, params: dict[str, Any]) -> dict[str, Any]:
        """DescribeAlarmHistory over the stored items; raises ValueError(code, message) on bad input."""
        item_type = params.get("HistoryItemType")
        if item_type is not None and item_type not in HISTORY_ITEM_TYPES:
            raise ValueError("ValidationError", f"1 validation error detected: Value '{item_type}' at "
                             f"'historyItemType' failed to satisfy constraint: Member must satisfy enum value "
                             f"set: [{', '.join(HISTORY_ITEM_TYPES)}]")
        max_records = int(params.get("MaxRecords") or 100)
        if not 1 <= max_records <= 100:
            raise ValueError("ValidationError", f"1 validation error detected: Value '{max_records}' at "
                             "'maxRecords' failed to satisfy constraint: Member must have value between 1 and 100")
        types = params.get("AlarmTypes") or ["MetricAlarm"]
        start, end = _moment(params.get("StartDate")), _moment(params.get("EndDate"))
        with self._lock:
            items = [item for item in self._items.get(region, [])
                     if (not params.get("AlarmName") or item.alarm_name == params["AlarmName"])
                     and (item_type is None or item.item_type == item_type) and "MetricAlarm" in types
                     and (start is None or item.timestamp >= start) and (end is None or item.timestamp <= end)]
        if params.get("ScanBy", "TimestampDescending") == "TimestampDescending":
            items.reverse()
        page, token = offset_page(items, params.get("NextToken"), max_records)
        return {"AlarmHistoryItems": [item.as_dict() for item in page], **token}


def cloudwatch_operation(target: str, content_type: str, body: bytes) -> tuple[str, str] | None:
    """(operation, protocol) of a CloudWatch request in JSON 1.0 or query protocol, else None."""
    if target.startswith(JSON_PREFIX):
        return target[len(JSON_PREFIX):], "json"
    if not target and content_type.startswith("application/x-www-form-urlencoded") and b"Action=" in body \
            and b"Version=2010-08-01" in body:  # CloudWatch's API version: other query services' bodies are not parsed
        action = parse_qs(body.decode(errors="replace")).get("Action", [""])[0]
        if action:
            return action, "query"
    return None


def handle_describe_alarm_history(history: AlarmHistory, region: str, protocol: str,
                                  body: bytes) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of the answer, in the request's protocol."""
    params = json.loads(body or b"{}") if protocol == "json" else _query_params(body)
    try:
        answer = history.query(region, params)
    except (ValueError, TypeError) as error:
        code, message = error.args if len(error.args) == 2 else ("ValidationError", str(error))
        return _error(protocol, code, message)
    if protocol == "json":
        items = [{**item, "Timestamp": item["Timestamp"].timestamp()} for item in answer["AlarmHistoryItems"]]
        body = json.dumps({**answer, "AlarmHistoryItems": items}).encode()
        return 200, {"Content-Type": "application/x-amz-json-1.0"}, body
    return 200, {"Content-Type": "text/xml"}, _query_xml(answer).encode()


def _query_params(body: bytes) -> dict[str, Any]:
    form = {key: values[0] for key, values in parse_qs(body.decode()).items()}
    params: dict[str, Any] = {key: value for key, value in form.items() if "." not in key}
    types = [value for key, value in sorted(form.items()) if key.startswith("AlarmTypes.member.")]
    if types:
        params["AlarmTypes"] = types
    return params


def _query_xml(answer: dict[str, Any]) -> str:
    members = "".join(
        "<member>" + "".join(f"<{key}>{escape(_xml_value(value))}</{key}>" for key, value in item.items()) + "</member>"
        for item in answer["AlarmHistoryItems"])
    token = f"<NextToken>{answer['NextToken']}</NextToken>" if "NextToken" in answer else ""
    return (f'<DescribeAlarmHistoryResponse xmlns="{XML_NAMESPACE}"><DescribeAlarmHistoryResult>'
            f"<AlarmHistoryItems>{members}</AlarmHistoryItems>{token}</DescribeAlarmHistoryResult>"
            "<ResponseMetadata><RequestId>emulator</RequestId></ResponseMetadata></DescribeAlarmHistoryResponse>")


def _xml_value(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return str(value)


def _error(protocol: str, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    if protocol == "json":
        headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-query-error": f"{code};Sender"}
        return 400, headers, json.dumps({"__type": code, "message": message}).encode()
    body = (f'<ErrorResponse xmlns="{XML_NAMESPACE}"><Error><Type>Sender</Type><Code>{code}</Code>'
            f"<Message>{escape(message)}</Message></Error><RequestId>emulator</RequestId></ErrorResponse>")
    return 400, {"Content-Type": "text/xml"}, body.encode()


def _moment(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
