"""Writes the Parquet fixtures of ParquetFooterTests. Needs pyarrow (pip install pyarrow); the
tests themselves read only the committed files. Run from this folder: python3 make.py"""
import datetime
import decimal

import pyarrow as pa
import pyarrow.parquet as pq

t = pa.table({
    "id": pa.array([1, 2, 3], pa.int64()),
    "name": pa.array(["a", None, "c"], pa.string()),
    "score": pa.array([1.5, 2.0, None], pa.float64()),
    "ok": pa.array([True, False, True], pa.bool_()),
    "day": pa.array([datetime.date(2026, 1, 1)] * 3, pa.date32()),
    "ts": pa.array([datetime.datetime(2026, 1, 1, 12)] * 3, pa.timestamp("us")),
    "price": pa.array([decimal.Decimal("1.25")] * 3, pa.decimal128(10, 2)),
    "tags": pa.array([["x"], [], ["y", "z"]], pa.list_(pa.string())),
    "meta": pa.array([{"a": 1, "b": "q"}] * 3, pa.struct([("a", pa.int32()), ("b", pa.string())])),
    "raw": pa.array([b"\x00", b"\x01", b"\x02"], pa.binary()),
    "small": pa.array([1, 2, 3], pa.int16()),
})
t = t.cast(t.schema.set(0, pa.field("id", pa.int64(), nullable=False)))
pq.write_table(t, "types.parquet", compression="none", row_group_size=2)  # 3 rows, 2 row groups
pq.write_table(pa.table({"a": pa.array([], pa.int32()), "b": pa.array([], pa.string())}), "empty.parquet", compression="none")
