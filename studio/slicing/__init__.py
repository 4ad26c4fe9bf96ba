"""Instant quotes from 3D models (seed 002, "3D File Processing & Slicing"), without Dagster.

* :mod:`mesh`: uploads read and measured (STL, 3MF) with trimesh; refusals with a reason;
* :mod:`options`: the client's layer height, infill and supports, validated;
* :mod:`runner`: one PrusaSlicer run in its own process group, killed whole at the timeout;
* :mod:`gcode`: grams and print time from the G-code, in every format the seed lists;
* :mod:`estimate`: the fallback from the mesh when the slicer cannot answer;
* :mod:`leases`, :mod:`service`: uploads, slice requests, and the workers that run them under
  ``SLICER_CONCURRENCY`` slots shared by every process, with retries and a result cache;
* :mod:`catalog`, :mod:`pricing`: printers, materials, templates; prices with their breakdown and
  :func:`pricing.quick_order_lines`, the quote lines of a quick order.
"""

from studio.slicing.pricing import quick_order_lines

__all__ = ["quick_order_lines"]
