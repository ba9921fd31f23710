"""Live-camera demo and image GUI on top of edge_sdk.

``sources`` opens webcams, streams, videos, images and folders; ``overlay`` draws
the annotations; ``demo`` runs the loop (window or headless video + JSONL);
``gui`` is the Tk image classifier; ``cli`` registers ``cifar-edge camera`` and
``cifar-edge gui``; ``synth`` builds test videos; ``bench_headless`` measures FPS.
Nothing here is imported by ``edge_sdk`` itself.
"""
