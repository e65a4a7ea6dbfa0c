//! Drawing the QR code: SVG through the `qrcode` crate's renderer, PNG by writing the module
//! grid with the `png` crate (a grey-scale image, one byte per pixel). Error correction level M
//! (15 % of the code may be damaged), the usual choice for a printed code on a wall.

use qrcode::render::svg;
use qrcode::{Color, EcLevel, QrCode};

/// Light modules around the code, as ISO/IEC 18004 asks.
const QUIET_ZONE_MODULES: usize = 4;
/// Smallest side of the SVG drawing, in user units (pixels at 100 %).
const SVG_SIDE_MIN: u32 = 240;

/// Why a text cannot be drawn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QrRenderError {
    #[error("the payload does not fit a QR code at error correction level M: {0}")]
    DoesNotFit(String),
    #[error("writing the PNG: {0}")]
    Png(String),
}

fn code(text: &str) -> Result<QrCode, QrRenderError> {
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|error| QrRenderError::DoesNotFit(error.to_string()))
}

/// The code as an SVG document.
pub fn svg(text: &str) -> Result<String, QrRenderError> {
    Ok(code(text)?
        .render::<svg::Color<'_>>()
        .min_dimensions(SVG_SIDE_MIN, SVG_SIDE_MIN)
        .quiet_zone(true)
        .build())
}

/// The code as a PNG image with `module_pixels` pixels per module.
pub fn png(text: &str, module_pixels: u32) -> Result<Vec<u8>, QrRenderError> {
    let code = code(text)?;
    let modules = code.width();
    let colors = code.to_colors();
    let scale = module_pixels.max(1) as usize;
    let side_modules = modules + 2 * QUIET_ZONE_MODULES;
    let side = side_modules * scale;
    let mut pixels = vec![0xffu8; side * side];
    for (index, color) in colors.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let (row, column) = (index / modules, index % modules);
        let top = (row + QUIET_ZONE_MODULES) * scale;
        let left = (column + QUIET_ZONE_MODULES) * scale;
        for y in top..top + scale {
            let start = y * side + left;
            if let Some(run) = pixels.get_mut(start..start + scale) {
                run.fill(0);
            }
        }
    }
    let mut out = Vec::new();
    let side_u32 = u32::try_from(side).map_err(|error| QrRenderError::Png(error.to_string()))?;
    let mut encoder = png::Encoder::new(&mut out, side_u32, side_u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .map_err(|error| QrRenderError::Png(error.to_string()))?;
    writer
        .write_image_data(&pixels)
        .map_err(|error| QrRenderError::Png(error.to_string()))?;
    writer
        .finish()
        .map_err(|error| QrRenderError::Png(error.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_svg_and_png() {
        let text = "HT1:MZXW6YTBOI";
        let drawing = svg(text).unwrap();
        assert!(drawing.starts_with("<?xml"));
        assert!(drawing.contains("<svg"));
        let image = png(text, 4).unwrap();
        assert_eq!(&image[..8], b"\x89PNG\r\n\x1a\n");
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let text = "A".repeat(5000);
        assert!(matches!(svg(&text), Err(QrRenderError::DoesNotFit(_))));
    }
}
