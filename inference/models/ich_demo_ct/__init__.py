"""The ICH demo model: a small 3D U-Net for hyperdense lesions in the synthetic head CTs."""
