"""Write random-weight FAN files where face_alignment looks for them, with an S3FD that never finds a face.

    python fan_background_weights.py TORCH_HOME

Run with the interpreter whose face_alignment DECA will use (the file names and formats are that version's:
`$TORCH_HOME/hub/checkpoints/<basename of face_alignment's URL>`, torch state dicts). The 2DFAN4 landmark net
gets seeded random weights. Every S3FD classifier head gets zero weights and a bias that says "background"
(+10) over "face" (-10), so every anchor scores ~e^-20 and the detector returns no box: DECA then takes its
"no face detected! run original image" path (the whole image), and FAN's landmark net never runs.
"""

import os
import sys
from urllib.parse import urlparse

import torch
from face_alignment.api import models_urls
from face_alignment.detection.sfd.net_s3fd import s3fd
from face_alignment.detection.sfd.sfd_detector import models_urls as sfd_urls
from face_alignment.models import FAN


def main(torch_home: str) -> None:
    folder = os.path.join(torch_home, "hub", "checkpoints")
    os.makedirs(folder, exist_ok=True)
    torch.manual_seed(0)
    name = os.path.basename(urlparse(models_urls["2DFAN-4"]).path)
    torch.save(FAN(4).state_dict(), os.path.join(folder, name))
    net = s3fd()
    with torch.no_grad():
        for layer_name, layer in net.named_children():
            if layer_name.endswith("_conf"):
                layer.weight.zero_()
                layer.bias.fill_(10.0)  # background channel(s): conv3_3 has three (max-out) then face
                layer.bias[-1] = -10.0  # the face channel is the last one
    detector = os.path.basename(urlparse(sfd_urls["s3fd"]).path)
    torch.save(net.state_dict(), os.path.join(folder, detector))
    print(name, detector)


if __name__ == "__main__":
    main(sys.argv[1])
