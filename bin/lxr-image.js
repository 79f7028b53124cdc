#!/usr/bin/env node
import "../dist/lxr-image.js";
