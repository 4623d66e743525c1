"""Spec texts several test modules write into scratch projects (one copy, not one each)."""

# A risk spec with every limit set: portfolios in tests reference it as `risk limits`.
LIMITS = """\
risk limits {
    max_order_notional 1000 EUR
    max_symbol_exposure 30%
    max_total_exposure 80%
    max_open_positions 3
    max_daily_loss 2%
    max_orders_per_minute 10
}
"""
