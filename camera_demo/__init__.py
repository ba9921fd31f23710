"""Live-camera demo and image GUI on top of edge_sdk."""
