// The Pulumi program: every image under images/ (or those named in `antidote-images:images`).
import { loadImages } from "./lib/program";

export const images = loadImages();
