"""The re-rank service's wire format: request and response types, also its OpenAPI schema.

Every field is bounded (ids at most 256 characters, finite scores, a weight in [0, 1]), numbers must
be JSON numbers (no booleans or numeric strings) and unknown fields are refused, so a request is validated completely before any work is done.
A ``user_id`` may be a JSON integer (a shop's numeric customer id): it is read as its decimal string.

    python -c "from recsys.serve.schema import REQUEST; print(REQUEST.validate_json(b'{\"candidates\": []}'))"
"""

from __future__ import annotations

from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter, with_config
from typing_extensions import Annotated, NotRequired, TypedDict


UserId = Annotated[str, Field(max_length=256)]
# a shop's numeric customer id (17850): read as its decimal string, so "17850" and 17850 are one customer;
# strict: true and 17850.0 are refused; a 64-bit integer
NumericUserId = Annotated[int, Field(strict=True, ge=-2 ** 63, le=2 ** 63 - 1), AfterValidator(str)]


# TypedDicts rather than models: pydantic validates the raw JSON bytes into plain dicts in one
# pass, about twice as fast as json.loads + BaseModel for a 1,000-candidate request.
@with_config(ConfigDict(extra="forbid"))
class Candidate(TypedDict):
    item_id: Annotated[str, Field(min_length=1, max_length=256, description="returned unchanged")]
    segment: NotRequired[Annotated[str | None, Field(max_length=256, description=(
        "absent, null or empty: the item's segment in the store's events; unknown = neutral"))]]
    # strict: true or "0.5" are refused (422), not read as 1.0 / 0.5; integers stay numbers
    base_score: Annotated[float, Field(strict=True, allow_inf_nan=False, description="upstream score, higher is better")]


@with_config(ConfigDict(extra="forbid"))
class RerankRequest(TypedDict):
    user_id: NotRequired[Annotated[UserId | NumericUserId | None, Field(description="echoed back, as a string")]]
    weight: NotRequired[Annotated[float | None, Field(strict=True, ge=0.0, le=1.0, description="default rerank.weight, else the weight the release chose")]]
    candidates: list[Candidate]


class RankedItem(TypedDict):
    item_id: str
    trend: Annotated[float, Field(description="the segment's trend; 0 for an unknown segment")]
    score: Annotated[float | None, Field(description="the customer model's buy probability, if it scored the item")]
    signal: Annotated[str, Field(description="what ranked the item: customer_model, segment_trend or base")]
    final_score: Annotated[float, Field(description="the rank-safe blend, in [0, 1]")]
    rank: Annotated[int, Field(description="1-based position in the re-ranked list")]


class UnknownSegments(TypedDict):
    count: Annotated[int, Field(description="candidates whose segment the production model does not know")]
    segments: Annotated[list[str], Field(description="those segments (at most 20), sorted")]


class UnknownItems(TypedDict):
    count: Annotated[int, Field(description="candidates without a segment whose item the store's events never had")]
    items: Annotated[list[str], Field(description="those items (at most 20), sorted")]


class RerankResponse(TypedDict):
    user_id: str | None
    model_version: str
    weight: float
    customer_known: Annotated[bool, Field(description="the customer model scored this user at push time")]
    unknown_segments: UnknownSegments
    unknown_items: UnknownItems
    items: list[RankedItem]


class Health(TypedDict):
    status: str  # ok | degraded (an older version serves, or production trails on live results) | no_model
    model_version: str | None
    segments: int
    customers: Annotated[int, Field(description="customers with push-time scores (0: trends only)")]
    reload_error: str | None
    live_results: Annotated[str | None, Field(description="why production is degraded on live results (it trails "
                                                          "the best baseline; the fix: trendrec models rollback)")]


REQUEST = TypeAdapter(RerankRequest)
