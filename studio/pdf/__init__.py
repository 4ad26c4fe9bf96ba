"""Quote and invoice PDFs (seed 002, "PDF Generation", without a browser): HTML templates printed by
WeasyPrint (:mod:`studio.pdf.render`, pure), the document read into a view (:mod:`studio.pdf.view`),
cached locally and kept in storage, never served stale (:mod:`studio.pdf.cache`), and emailed with
the PDF attached (:mod:`studio.pdf.sending`)."""
