//! The clap definitions: flags follow sipgrep/tcpdump/ripgrep habits where they exist.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "sipidx",
    version,
    about = "pcap archive indexer and forensics CLI for SIP and RTP",
    after_help = "Exit status: 0 something matched / success, 1 nothing matched, 2 error \
                  (e.g. an unreadable file; the other files are still processed), 130 interrupted."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the SIP messages of capture files that match, like sipgrep (no database needed).
    Grep(GrepArgs),
    /// Index capture files (files, directories, globs) into the DB: only files not indexed yet
    Index(IndexArgs),
    /// Rebuild tables and text index from the captures already in the catalog (e.g. with new
    /// --correlate-header rules), all of it or only a time window (--since/--until); captures
    /// that no longer exist are dropped
    Reindex(IndexArgs),
    /// Capture from interfaces and HEP agents into a rotating ring of files (like tcpdump -C/-G/-W).
    Capture(super::capture::CaptureArgs),
    /// SIP messages from the DB: grep's filters plus a full-text QUERY, as a table, NDJSON or CSV
    #[command(args_override_self = true)]
    Search(SearchArgs),
    /// Dialogs (calls, registrations, other Call-IDs) from the DB, with their outcome and timings
    #[command(args_override_self = true)]
    Calls(CallsArgs),
    /// Traffic statistics from the DB: methods, response codes, ASR, PDD, top User-Agents and sources
    #[command(args_override_self = true)]
    Stats(StatsArgs),
    /// RTP streams in the DB matching filters, like tshark's `-z rtp,streams` over the archive
    #[command(args_override_self = true)]
    Streams(StreamsArgs),
    /// One call's media quality: measured per direction beside what the endpoints reported
    Quality(QualityArgs),
    /// Check that a DB is sound: catalog, Parquet parts, text index, capture files. Exit status 0
    /// sound, 1 problems found (each printed with its file), 2 the DB could not be checked
    Verify(VerifyArgs),
    /// Print a shell completion script (bash, zsh, fish) to stdout
    Completions(super::install::CompletionsArgs),
    /// Write the man pages (sipidx.1 and one per subcommand) into --dir, or print sipidx.1
    Man(super::install::ManArgs),
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// One JSON object per finding, then a summary object (NDJSON)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct StreamsArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Streams of this Call-ID
    #[arg(long = "call-id", value_name = "ID")]
    pub call_id: Option<String>,
    /// Source or destination address, or CIDR prefix
    #[arg(long, value_name = "ADDR")]
    pub ip: Option<String>,
    /// Source or destination port
    #[arg(long, value_name = "P")]
    pub port: Option<u16>,
    /// SSRC (hex with 0x, or decimal)
    #[arg(long, value_name = "SSRC")]
    pub ssrc: Option<String>,
    /// Codec name or payload text contains this (case-insensitive): pcma, g729, opus
    #[arg(long, value_name = "NAME")]
    pub codec: Option<String>,
    /// Streams still active at or after this time (RFC 3339, or `2024-03-27 10:40`, UTC unless an
    /// offset is given)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Streams started before this time (same forms as --since)
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Streams that lost at least PCT percent of the expected packets
    #[arg(long, value_name = "PCT")]
    pub min_loss: Option<f64>,
    /// Streams whose MOS is at most X
    #[arg(long, value_name = "X")]
    pub max_mos: Option<f64>,
    /// Only media no SDP announced (no Call-ID)
    #[arg(long)]
    pub unmatched: bool,
    #[command(flatten)]
    pub format: RowFormatArgs,
}

#[derive(Args, Debug)]
pub struct QualityArgs {
    /// The call's Call-ID
    #[arg(value_name = "CALL-ID")]
    pub call_id: String,
    #[command(flatten)]
    pub db: DbArgs,
    /// One JSON object per stream and per report (NDJSON)
    #[arg(long)]
    pub json: bool,
    /// Print the MOS model's inputs and formula for each stream
    #[arg(long)]
    pub explain: bool,
}

/// How a report is printed: text or table for people, NDJSON or CSV for scripts (`stats`).
#[derive(Args, Debug, Clone)]
pub struct FormatArgs {
    /// One JSON object per row (NDJSON)
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// CSV (RFC 4180) with a header line naming the JSON fields
    #[arg(long)]
    pub csv: bool,
    /// Colour of the table: auto (when stdout is a terminal and NO_COLOR is unset), always, never
    #[arg(long, value_enum, default_value = "auto")]
    pub color: Color,
}

/// How rows are printed by the row commands (`search`, `calls`, `streams`, `stats`).
#[derive(Args, Debug, Clone)]
pub struct RowFormatArgs {
    #[command(flatten)]
    pub format: FormatArgs,
    /// At most N rows (0: all; by default 100, and all for `streams`; for `stats`, N buckets of
    /// `--by`, the total always last); a note on stderr says when more matched
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub filter: MessageFilterArgs,
    /// Only messages sent by known scanners (friendly-scanner, sipvicious, floods...)
    #[arg(long, conflicts_with = "no_scanner")]
    pub scanner: bool,
    /// Leave out messages sent by known scanners
    #[arg(long)]
    pub no_scanner: bool,
    /// Treat QUERY as a regular expression that one whole word of the message must match
    /// (words are lowercased and split at non-alphanumerics: `zoip.*`, `48[0-9]`)
    #[arg(long, requires = "query")]
    pub regex: bool,
    /// Order by capture time: `time` (oldest first) or `-time` (newest first)
    #[arg(
        long,
        default_value = "time",
        allow_hyphen_values = true,
        value_name = "KEY"
    )]
    pub sort: String,
    #[command(flatten)]
    pub format: RowFormatArgs,
    /// Full-text query over the whole message: words (all must occur, case-insensitive),
    /// "quoted phrases", OR, -word; several arguments are joined with spaces
    #[arg(value_name = "QUERY")]
    pub query: Vec<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum KindArg {
    Call,
    Registration,
    Other,
}

#[derive(Args, Debug)]
pub struct CallsArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Dialog kind (repeatable): call (INVITE), registration (REGISTER), other
    #[arg(long, value_enum, value_name = "KIND")]
    pub kind: Vec<KindArg>,
    /// State (repeatable or comma-separated): answered, failed, canceled, in_progress (calls);
    /// registered, unregistered, failed, in_progress (registrations); a final status code (other)
    #[arg(long, value_delimiter = ',', value_name = "STATE")]
    pub state: Vec<String>,
    /// Only failed or canceled dialogs
    #[arg(long)]
    pub failed: bool,
    /// Final response status code (486) or class (4xx)
    #[arg(long, value_name = "CODE")]
    pub status: Option<String>,
    /// Calls that lasted at least this long from 200 OK to BYE (units ms, s, m, h; a bare number
    /// is seconds)
    #[arg(long, value_name = "DUR")]
    pub min_duration: Option<String>,
    /// Calls whose post-dial delay (INVITE to first 18x or final) is at least this (units as
    /// --min-duration)
    #[arg(long, value_name = "DUR")]
    pub min_pdd: Option<String>,
    /// Calls whose worst RTP stream lost at least PCT percent (calls without measured media never match)
    #[arg(long, value_name = "PCT")]
    pub min_loss: Option<f64>,
    /// Calls whose worst RTP stream MOS is at most X (calls without measured media never match)
    #[arg(long, value_name = "X")]
    pub max_mos: Option<f64>,
    /// From user part contains U (case-insensitive)
    #[arg(long = "from", value_name = "U")]
    pub from_user: Option<String>,
    /// To user part contains U
    #[arg(long = "to", value_name = "U")]
    pub to_user: Option<String>,
    /// Request-URI user part contains U
    #[arg(long = "ruri", value_name = "U")]
    pub ruri_user: Option<String>,
    /// Call-ID equals ID
    #[arg(long = "call-id", value_name = "ID")]
    pub call_id: Option<String>,
    /// User-Agent of the first request contains TEXT (case-insensitive)
    #[arg(long = "ua", value_name = "TEXT")]
    pub user_agent: Option<String>,
    /// Source or destination of the first request: an address or CIDR prefix (10.0.0.0/8)
    #[arg(long, value_name = "ADDR")]
    pub ip: Option<String>,
    /// Source or destination port of the first request
    #[arg(long, value_name = "P")]
    pub port: Option<u16>,
    /// Only dialogs that started at or after this time (RFC 3339, or `2024-03-27 10:40`, UTC
    /// unless an offset is given)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only dialogs that started at or before this time (same forms as --since)
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only dialogs flagged as scanners
    #[arg(long, conflicts_with = "no_scanner")]
    pub scanner: bool,
    /// Leave out dialogs flagged as scanners
    #[arg(long)]
    pub no_scanner: bool,
    /// Order: time, duration or pdd; a leading `-` for descending (`-duration`: longest first)
    #[arg(
        long,
        default_value = "time",
        allow_hyphen_values = true,
        value_name = "KEY"
    )]
    pub sort: String,
    #[command(flatten)]
    pub format: RowFormatArgs,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum BucketArg {
    Hour,
    Day,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Only traffic at or after this time (RFC 3339, or `2024-03-27 10:40`, UTC unless an offset
    /// is given)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only traffic at or before this time (same forms as --since)
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// The same figures per UTC hour or day, then the total
    #[arg(long, value_enum, value_name = "BUCKET")]
    pub by: Option<BucketArg>,
    /// Length of the top lists
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,
    #[command(flatten)]
    pub format: RowFormatArgs,
}

/// Where the DB lives: `--db DIR`, else `$SIPIDX_DB`, else `./sipidx.db`.
#[derive(Args, Debug, Clone)]
pub struct DbArgs {
    /// Database directory
    #[arg(
        long,
        env = "SIPIDX_DB",
        default_value = "sipidx.db",
        value_name = "DIR"
    )]
    pub db: PathBuf,
}

#[derive(Args, Debug)]
pub struct IndexArgs {
    /// Capture files, directories (walked recursively) or globs (`/ring/*.pcap`); none for reindex
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub db: DbArgs,
    /// Files modified more recently than this are still being written and wait for the next run
    /// (units ms, s, m, h; a bare number is seconds; 0s takes everything). `*.part` files always wait.
    #[arg(long, default_value = "5s", value_name = "DUR")]
    pub settle: String,
    /// SIP scan threads (default: one per core, less one for the media pass unless --no-media)
    #[arg(short = 'j', long, default_value_t = 0)]
    pub threads: usize,
    /// Files scanned at once (at most -j); each holds its HEP window and a few chunks of rows
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub batch_files: usize,
    /// Memory for dialog summaries (e.g. 256MiB); beyond it sorted runs spill into DB/spill/
    #[arg(long, default_value = "256MiB", value_name = "SIZE")]
    pub dialog_memory: String,
    /// Heap of the full-text index writer (at least 15MiB); a segment is written when it fills
    #[arg(long, default_value = "200MB", value_name = "SIZE")]
    pub text_memory: String,
    /// Extra header linking the legs of one call (repeatable), besides X-Call-ID / X-CID
    #[arg(long = "correlate-header", value_name = "NAME")]
    pub correlate_headers: Vec<String>,
    /// Link legs with the same caller and callee numbers starting within this window (0s: off)
    #[arg(long, default_value = "2s", value_name = "DUR")]
    pub correlate_window: String,
    /// Do not decode HEP (HOMER encapsulation) payloads
    #[arg(long)]
    pub no_hep: bool,
    #[command(flatten)]
    pub dedup: DedupArgs,
    /// RTP stream metrics: `wireshark` (counts and times exactly as Wireshark's RTP analysis) or
    /// `rfc3550` (RFC 3550 A.1/A.3 expected/lost, A.8 jitter); see README "RTP metrics"
    #[arg(long, value_enum, default_value = "wireshark")]
    pub metrics: MetricsMode,
    /// Index SIP only: no RTP/RTCP analysis, no media reports (the media tables are left as they
    /// are; streams open in earlier runs carry on in the next run that analyses media)
    #[arg(long)]
    pub no_media: bool,
    /// No progress bar or summary on stderr
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the run's summary as one JSON object on stdout
    #[arg(long)]
    pub json: bool,
    /// Keep running: index every complete file as it appears (ring files from `sipidx capture`),
    /// polling every --interval, until SIGINT/SIGTERM
    #[arg(long)]
    pub follow: bool,
    /// Poll interval for --follow (units ms, s, m)
    #[arg(long, default_value = "2s", value_name = "DUR")]
    pub interval: String,
    /// reindex only: rebuild just the capture files overlapping this window, from this time
    /// (RFC 3339 `2024-03-27T10:40:00Z`, `2024-03-27 10:40`, or a date; UTC)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// reindex only: ... up to this time (same forms as --since)
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum MetricsMode {
    Wireshark,
    Rfc3550,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Color {
    Auto,
    Always,
    Never,
}

/// Filters on SIP messages, shared by `grep` and `search`.
#[derive(Args, Debug, Clone, Default)]
pub struct MessageFilterArgs {
    /// From user part contains U (`--from 2323` finds sip:+492323123@host)
    #[arg(long = "from", value_name = "U")]
    pub from_user: Option<String>,
    /// To user part contains U
    #[arg(long = "to", value_name = "U")]
    pub to_user: Option<String>,
    /// Request-URI user part contains U
    #[arg(long = "ruri", value_name = "U")]
    pub ruri_user: Option<String>,
    /// Call-ID equals ID
    #[arg(long = "call-id", value_name = "ID")]
    pub call_id: Option<String>,
    /// Request method (repeatable); with --status, the CSeq method of responses
    #[arg(long = "method", value_name = "M")]
    pub methods: Vec<String>,
    /// Response status code (486) or class (4xx)
    #[arg(long, value_name = "CODE")]
    pub status: Option<String>,
    /// User-Agent or Server contains TEXT (case-insensitive)
    #[arg(long = "ua", value_name = "TEXT")]
    pub user_agent: Option<String>,
    /// Source or destination address, or CIDR prefix (10.0.0.0/8)
    #[arg(long, value_name = "ADDR")]
    pub ip: Option<String>,
    /// Source or destination port
    #[arg(long, value_name = "P")]
    pub port: Option<u16>,
    /// Only messages at or after this time (RFC 3339, or `2024-03-27 10:40`, UTC unless an offset is given)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only messages at or before this time (same forms as --since)
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
}

/// One message seen twice: HEP mirrors and SPAN duplicates; shared by `grep` and `index`.
#[derive(Args, Debug, Clone)]
pub struct DedupArgs {
    /// Keep HEP copies of raw messages seen in the same capture (by default a HEP packet whose inner
    /// payload, addresses and ports equal a raw message's within --hep-dedup-window is dropped and the
    /// raw message is marked as mirrored)
    #[arg(long)]
    pub keep_hep_mirrors: bool,
    /// How far apart a raw message and its HEP copy may be, in capture time (units ns, us, ms, s, m, h;
    /// a bare number is seconds)
    #[arg(long, value_name = "DUR", default_value = "1s")]
    pub hep_dedup_window: String,
    /// Drop SPAN duplicates: a datagram whose payload and 5-tuple equal one seen within
    /// --dedup-window (off by default, so counts match tshark's)
    #[arg(long)]
    pub dedup: bool,
    /// How far apart two copies may be to be duplicates; must stay below SIP T1 (500ms) so that
    /// retransmissions are never dropped (units as for --hep-dedup-window)
    #[arg(long, value_name = "DUR", default_value = "5ms")]
    pub dedup_window: String,
}

#[derive(Args, Debug)]
pub struct GrepArgs {
    /// Capture files (pcap, pcapng; plain, gzip, bzip2 or zstd compressed)
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Extended regular expression over the whole message text (after `--`)
    #[arg(last = true, value_name = "REGEX")]
    pub regex: Option<String>,
    #[command(flatten)]
    pub filter: MessageFilterArgs,
    /// Case-insensitive REGEX
    #[arg(short = 'i', long)]
    pub ignore_case: bool,
    /// Print every message of each dialog (Call-ID) that has at least one match (like sipgrep -G)
    #[arg(short = 'G', long)]
    pub dialog: bool,
    /// One JSON object per message (NDJSON)
    #[arg(long, conflicts_with = "count")]
    pub json: bool,
    /// Print only the number of matching messages
    #[arg(short = 'c', long)]
    pub count: bool,
    /// Colour: auto (when stdout is a terminal and NO_COLOR is unset), always, never
    #[arg(long, value_enum, default_value = "auto")]
    pub color: Color,
    /// Do not decode HEP (HOMER encapsulation) payloads
    #[arg(long)]
    pub no_hep: bool,
    #[command(flatten)]
    pub dedup: DedupArgs,
}
