//! The codec every generated client and server uses: prost's, except that a message that cannot be
//! decoded is INVALID_ARGUMENT. tonic-prost answers INTERNAL for it, and the suite keeps INTERNAL
//! for its own bugs: bad input never gets INTERNAL.

use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::ProstCodec;

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct InvalidArgumentCodec<T, U>(ProstCodec<T, U>);

impl<T, U> Default for InvalidArgumentCodec<T, U> {
    fn default() -> Self {
        Self(ProstCodec::default())
    }
}

impl<T, U> Codec for InvalidArgumentCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = <ProstCodec<T, U> as Codec>::Encoder;
    type Decoder = Refusing<<ProstCodec<T, U> as Codec>::Decoder>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        Refusing(self.0.decoder())
    }
}

/// A decoder whose failures are the sender's fault.
#[derive(Debug)]
pub struct Refusing<D>(D);

impl<D: Decoder<Error = Status>> Decoder for Refusing<D> {
    type Item = D::Item;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        self.0.decode(buf).map_err(|status| {
            Status::invalid_argument(format!("The message is not a valid protobuf encoding: {}", status.message()))
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
