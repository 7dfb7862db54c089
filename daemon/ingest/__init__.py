"""Ingest: prediction and label logs from spool directories into the store, exactly once."""

from daemon.ingest.records import Rejected, coerce, label_row, parse_ts, prediction_row
from daemon.ingest.spool import IngestReport, SpoolReader, ensure_spools, spool_dirs

__all__ = ["IngestReport", "Rejected", "SpoolReader", "coerce", "ensure_spools", "label_row", "parse_ts",
           "prediction_row", "spool_dirs"]
