//! SIP/SIPS/TEL URIs and name-addr (display name, URI, header parameters such as tag).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uri<'a> {
    /// "sip", "sips", "tel", ... as written.
    pub scheme: &'a [u8],
    pub user: Option<&'a [u8]>,
    pub host: &'a [u8],
    pub port: Option<u16>,
    /// URI parameters after the host (";transport=tcp;user=phone"), without the leading ';'.
    pub params: &'a [u8],
}

impl<'a> Uri<'a> {
    pub fn parse(s: &'a [u8]) -> Option<Uri<'a>> {
        let _ = s;
        unimplemented!("Uri::parse")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameAddr<'a> {
    pub display_name: Option<&'a [u8]>,
    pub uri: Option<Uri<'a>>,
    /// The tag header parameter.
    pub tag: Option<&'a [u8]>,
    /// Header parameters after the URI, without the leading ';'.
    pub params: &'a [u8],
}

impl<'a> NameAddr<'a> {
    pub fn parse(s: &'a [u8]) -> Option<NameAddr<'a>> {
        let _ = s;
        unimplemented!("NameAddr::parse")
    }
}
