//! The dashboard's pages: server-rendered HTML (a little JavaScript in `assets/app.js` keeps
//! them live). Each page is a pure function of what the store, the plan file and the logs say.

pub mod charts;
