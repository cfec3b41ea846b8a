//! Classic pcap (libpcap) records.
pub(crate) struct Inner;
