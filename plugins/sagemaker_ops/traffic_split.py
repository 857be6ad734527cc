"""Is an observed traffic split consistent with the variant weights? A per-variant exact binomial test.

SageMaker routes each request to variant *i* with probability ``w_i / sum(w)``, independently, so
over *N* requests the count of variant *i* is Binomial(N, p_i). For every variant we run a
two-sided exact binomial test (``scipy.stats.binomtest``) of its count against p_i, and call the
split inconsistent when any p-value is below ``significance / number of variants`` (Bonferroni:
the chance that a correct router fails the check is at most ``significance``). A variant with
weight 0 must get no request at all (p-value 0 otherwise); a request served by a variant the
endpoint does not have is inconsistent too.

Pure helpers (scipy is imported when a test runs, never at DAG parse time).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from sagemaker_ops.variant_weights import traffic_shares

TEST_DESCRIPTION = (
    "two-sided exact binomial test per variant (scipy.stats.binomtest), Bonferroni-corrected: "
    "a variant fails when its p-value < significance / number of variants"
)


@dataclass(frozen=True)
class VariantSplit:
    variant: str
    weight: float
    expected_share: float
    count: int
    observed_share: float
    p_value: float


@dataclass(frozen=True)
class SplitReport:
    invocations: int
    significance: float
    threshold: float  # the per-variant p-value below which the split is inconsistent
    variants: tuple[VariantSplit, ...]
    unexpected: dict[str, int]  # variants that answered but are not in the weights

    @property
    def consistent(self) -> bool:
        return not self.unexpected and all(v.p_value >= self.threshold for v in self.variants)

    def to_dict(self) -> dict:
        """The JSON-serialisable result an operator returns."""
        return {
            "invocations": self.invocations,
            "test": TEST_DESCRIPTION,
            "significance": self.significance,
            "threshold": self.threshold,
            "consistent": self.consistent,
            "counts": {v.variant: v.count for v in self.variants} | dict(self.unexpected),
            "weights": {v.variant: v.weight for v in self.variants},
            "expected_shares": {v.variant: round(v.expected_share, 6) for v in self.variants},
            "observed_shares": {v.variant: round(v.observed_share, 6) for v in self.variants},
            "p_values": {v.variant: v.p_value for v in self.variants},
            "variants": [asdict(v) for v in self.variants],
        }

    def table(self) -> str:
        """A fixed-width table for the task log."""
        rows = [f"{'variant':<16} {'weight':>7} {'expected':>9} {'observed':>9} {'count':>6} {'p-value':>10}"]
        for v in self.variants:
            flag = "" if v.p_value >= self.threshold else "  <-- inconsistent"
            rows.append(f"{v.variant:<16} {v.weight:>7g} {v.expected_share:>9.1%} {v.observed_share:>9.1%} "
                        f"{v.count:>6} {v.p_value:>10.3g}{flag}")
        for name, count in sorted(self.unexpected.items()):
            rows.append(f"{name:<16} {'-':>7} {'-':>9} {count / self.invocations:>9.1%} {count:>6} "
                        f"{'-':>10}  <-- not a variant of the endpoint")
        return "\n".join(rows)


def check_split(counts: Mapping[str, int], weights: Mapping[str, float], significance: float) -> SplitReport:
    """Test the ``counts`` of each invoked variant against the traffic shares ``weights`` imply."""
    from scipy.stats import binomtest

    if not 0 < significance < 1:
        raise ValueError(f"significance must be between 0 and 1, got {significance!r}.")
    if not weights or not any(weight > 0 for weight in weights.values()):
        raise ValueError(f"weights must give at least one variant a weight above 0, got {dict(weights)!r}.")
    invocations = sum(counts.values())
    if invocations < 1:
        raise ValueError("No invocations were counted.")
    shares = traffic_shares(weights)
    variants = tuple(
        VariantSplit(
            variant=name,
            weight=float(weights[name]),
            expected_share=shares[name],
            count=counts.get(name, 0),
            observed_share=counts.get(name, 0) / invocations,
            p_value=float(binomtest(counts.get(name, 0), invocations, min(1.0, shares[name])).pvalue),
        )
        for name in sorted(weights)
    )
    return SplitReport(
        invocations=invocations,
        significance=significance,
        threshold=significance / len(weights),
        variants=variants,
        unexpected={name: count for name, count in counts.items() if name not in weights},
    )
