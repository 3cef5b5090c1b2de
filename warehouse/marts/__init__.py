"""Marts: build (``refresh``), reconcile with the record (``checks``), and read for dashboards (``kpis``)."""
