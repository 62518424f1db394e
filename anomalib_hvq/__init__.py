"""anomalib-hvq: HVQ-Trans for anomalib."""
