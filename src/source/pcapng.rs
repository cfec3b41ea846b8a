//! pcapng blocks: SHB, IDB, EPB, SPB, OPB, ISB.
