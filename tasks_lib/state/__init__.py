"""clawback's own state under .clawback/: the undo journal, the audit log, operation locks."""
