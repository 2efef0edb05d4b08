# Real public data sets for the quality bench, taken from Debian's R packages (no download at run
# time): each becomes DIR/<name>/{train.csv,test.csv,spec.json}, a 70/30 random split (seed 1).
#
#   apt-get install r-base-core r-cran-dslabs r-cran-aer r-cran-modeldata
#   Rscript test/tools/real-data.R out/real
#   npm run bench:quality -- --train out/real/movielens/train.csv --test out/real/movielens/test.csv \
#     --spec out/real/movielens/spec.json
#
# - movielens (dslabs): 100,004 ratings of 9,066 films by 671 users. Tasks: like (rating >= 4) and
#   love (rating >= 4.5, given like); features: the user and film ids, year, genres (multi-valued).
# - nmes (AER::NMES1988): 4,406 elderly patients of the US National Medical Expenditure Survey.
#   Tasks: any emergency-room visit, any hospital stay; 13 mixed features.
# - visits (the same patients): a regression and a binary task. Tasks: physician office visits in
#   the year (a count from 0 to 89, mean 5.8; regression on log1p), any hospital stay.
# - fertility (AER::Fertility): 254,654 mothers of two or more (1980 US census). Tasks: a third
#   child, worked in the year; 6 features.
# - lending (modeldata::lending_club): 9,857 Lending Club loans. One task: the loan went bad;
#   22 mixed features.

args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args) >= 1) args[[1]] else "out/real"

write_set <- function(name, frame, features, tasks) {
  dir <- file.path(out, name)
  dir.create(dir, recursive = TRUE, showWarnings = FALSE)
  set.seed(1)
  test <- sample(nrow(frame), round(0.3 * nrow(frame)))
  write.csv(frame[-test, ], file.path(dir, "train.csv"), row.names = FALSE, na = "")
  write.csv(frame[test, ], file.path(dir, "test.csv"), row.names = FALSE, na = "")
  spec <- sprintf(
    '{\n  "format": "csv",\n  "features": [\n%s\n  ],\n  "tasks": [\n%s\n  ]\n}\n',
    paste0("    ", features, collapse = ",\n"),
    paste0("    ", tasks, collapse = ",\n")
  )
  writeLines(spec, file.path(dir, "spec.json"), sep = "")
  cat(sprintf("%s: %d train, %d test rows -> %s\n", name, nrow(frame) - length(test), length(test), dir))
}
numeric <- function(n) sprintf('{ "name": "%s", "type": "numeric" }', n)
categorical <- function(n) sprintf('{ "name": "%s", "type": "categorical" }', n)
binary <- function(n, given = NULL) {
  if (is.null(given)) sprintf('{ "name": "%s", "type": "binary", "column": "%s", "positive": ["1"] }', n, n)
  else sprintf('{ "name": "%s", "type": "binary", "column": "%s", "positive": ["1"], "given": "%s" }', n, n, given)
}
flag <- function(x) as.integer(x)

suppressPackageStartupMessages({
  library(dslabs)
  library(AER)
  library(modeldata)
})

data(movielens, package = "dslabs")
ml <- data.frame(
  user = movielens$userId, movie = movielens$movieId, year = movielens$year,
  genres = as.character(movielens$genres),
  like = flag(movielens$rating >= 4), love = flag(movielens$rating >= 4.5)
)
write_set("movielens", ml,
  c(categorical("user"), categorical("movie"), numeric("year"),
    '{ "name": "genres", "type": "multi_categorical", "separator": "|" }'),
  c(binary("like"), binary("love", "like")))

data(NMES1988, package = "AER")
nmes <- NMES1988[, c("health", "chronic", "adl", "region", "age", "afam", "gender", "married",
  "school", "income", "employed", "insurance", "medicaid")]
nmes$emergency <- flag(NMES1988$emergency > 0)
nmes$hospital <- flag(NMES1988$hospital > 0)
write_set("nmes", nmes,
  c(categorical("health"), numeric("chronic"), categorical("adl"), categorical("region"),
    numeric("age"), categorical("afam"), categorical("gender"), categorical("married"),
    numeric("school"), numeric("income"), categorical("employed"), categorical("insurance"),
    categorical("medicaid")),
  c(binary("emergency"), binary("hospital")))
nmes$emergency <- NULL
nmes$visits <- NMES1988$visits
write_set("visits", nmes,
  c(categorical("health"), numeric("chronic"), categorical("adl"), categorical("region"),
    numeric("age"), categorical("afam"), categorical("gender"), categorical("married"),
    numeric("school"), numeric("income"), categorical("employed"), categorical("insurance"),
    categorical("medicaid")),
  c('{ "name": "visits", "type": "regression", "column": "visits", "transform": "log1p" }',
    binary("hospital")))

data(Fertility, package = "AER")
fert <- Fertility[, c("gender1", "gender2", "age", "afam", "hispanic", "other")]
fert$morekids <- flag(Fertility$morekids == "yes")
fert$worked <- flag(Fertility$work > 0)
write_set("fertility", fert,
  c(categorical("gender1"), categorical("gender2"), numeric("age"), categorical("afam"),
    categorical("hispanic"), categorical("other")),
  c(binary("morekids"), binary("worked")))

data(lending_club, package = "modeldata")
lc <- as.data.frame(lending_club)
kinds <- vapply(lc, function(x) if (is.factor(x)) "categorical" else "numeric", "")
features <- setdiff(names(lc), "Class")
lc$bad <- flag(lc$Class == "bad")
lc$Class <- NULL
write_set("lending", lc,
  ifelse(kinds[features] == "categorical", categorical(features), numeric(features)),
  binary("bad"))
