-- OCR's mean confidence (0-100) for text read from a page image; NULL for
-- text the file carried. On chunks for the hits (no join on the search
-- path), on pages for copies between backends.
ALTER TABLE pages ADD COLUMN IF NOT EXISTS ocr_confidence real;
ALTER TABLE chunks ADD COLUMN IF NOT EXISTS ocr_confidence real;
