"""The Victorian demand data the forecasting tests use, and the options that read it."""

from pathlib import Path

VIC = Path(__file__).resolve().parents[3] / "datasets" / "raw" / "vic_elecdemand_2014_halfhourly.csv"
# Half-hourly demand in AEST (no DST in the source), temperature known a day ahead.
COMMON = dict(
    target="demand_gw",
    time="period_start_aest_assumed",
    exog=["temperature_c"],
    known_ahead=["temperature_c"],
    timezone="Australia/Brisbane",
    horizon=48,
    temperature="temperature_c",
)
