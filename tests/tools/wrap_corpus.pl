#!/usr/bin/perl
# wrap_corpus.pl RAWDIR RUNS OUTDIR: split the sampled runs RAWDIR/1.txt .. RUNS.txt into
# stories and write them as training documents (used by make_corpus.sh).
#
# stories260K emits BOS between stories, which decodes to nothing, so a story boundary is
# a sentence end (or a closing quote after one) glued to a capital letter (`happy.Once upon`). The last piece of every
# run was cut by the full context and is dropped. Four stories in five become ChatML
# dialogues whose request names a character and a noun the story contains; the fifth
# stays plain so the model also completes bare stories (and so perplexity can be compared
# with stories260K on the same plain text). Choices hash the story's index: reproducible.
use strict;
use warnings;

my ($raw, $runs, $out) = @ARGV;
die "usage: $0 RAWDIR RUNS OUTDIR\n" unless defined $out;

my @beings = qw(dog cat bird bunny bear fish frog duck lion mouse puppy kitten rabbit
    squirrel owl elephant monkey horse cow pig sheep bug butterfly dragon girl boy
    princess king queen robot monster fox turtle);
my @things = qw(ball toy tree park car boat book cake box hat kite flower garden house
    balloon doll truck train star rock stick apple cookie bike beach river
    jar shoe bed door window ring bag bench pond cup sandwich candy pie lake hill
    castle shell bell leaf stone swing slide drum crayon picture blanket pillow basket);
my @names = qw(Lily Tom Ben Sue Max Sam Mia Timmy Anna Bob Lucy Jack Tim Sara Amy Mary
    Jane Billy Sally Joe Emma Molly Jill Jake Spot Kitty Mittens Fluffy Daisy Zoe Leo);
my @asks = (
    "Tell me a story about %s and %s.",
    "Can you tell me a story about %s and %s?",
    "Write a short story about %s and %s.",
    "Please tell me a story about %s and %s.",
    "I want a story about %s and %s.",
    "Tell me a story with %s and %s.",
);

sub mix { my $x = ($_[0] * 2654435761 + 12345) % 4294967296; $x ^= $x >> 13;
          return ($x * 2246822519) % 4294967296; }
sub art { my $w = shift; return ($w =~ /^[aeiou]/ ? "an " : "a ") . $w; }
sub first_of {      # the word of @$list that occurs first in the story
    my ($s, $list, $skip) = @_;
    my ($best, $pos) = (undef, -1);
    for my $w (@$list) {
        next if defined $skip && $w eq $skip;
        if ($s =~ /\b\Q$w\E\b/) {
            my $p = $-[0];
            ($best, $pos) = ($w, $p) if $pos < 0 || $p < $pos;
        }
    }
    return $best;
}

open(my $tr, '>', "$out/train.txt") or die "$out/train.txt: $!\n";
open(my $ho, '>', "$out/heldout.txt") or die "$out/heldout.txt: $!\n";
open(my $hs, '>', "$out/heldout-stories.txt") or die "$out/heldout-stories.txt: $!\n";
my ($k, $nbytes, $ndocs) = (0, 0, 0);
for my $run (1 .. $runs) {
    my $f = "$raw/$run.txt";
    open(my $in, '<', $f) or die "$f: $!\n";
    local $/;
    my $text = <$in>;
    close($in);
    my @parts = split /(?:(?<=[.!?])|(?<=[.!?]"))(?=[A-Z])/, $text;
    pop @parts;
    for my $s (@parts) {
        $s =~ s/[ \t]+\n/\n/g;
        $s =~ s/\n{2,}/\n/g;
        $s =~ s/^\s+//;
        $s =~ s/\s+$//;
        next if length($s) < 150 || $s !~ /[.!?"]$/;
        my $h = mix($k++);
        my $doc;
        if ($h % 5 == 0) {
            $doc = $s;
        } else {
            my $name;
            if ($s =~ /\bnamed ([A-Z][a-z]+)/) { $name = $1; }
            else { $name = first_of($s, \@names); }
            my $thing = first_of($s, \@things);
            my $being = first_of($s, \@beings);
            my ($x, $y);
            if (defined $being && defined $thing && (($h >> 8) % 3 == 0 || !defined $name)) {
                ($x, $y) = (art($being), art($thing));
            } elsif (defined $name && defined $thing) {
                ($x, $y) = ($name, art($thing));
            } elsif (defined $name && defined $being) {
                ($x, $y) = ($name, art($being));
            } else {
                $doc = $s;
            }
            if (!defined $doc) {
                my $ask = sprintf($asks[($h >> 16) % @asks], $x, $y);
                $doc = "<|im_start|>user\n$ask<|im_end|>\n<|im_start|>assistant\n$s<|im_end|>";
            }
        }
        if ($run % 20 == 0) {
            print $ho "$doc\n\n";
            print $hs "$s\n\n";
        } else {
            print $tr "$doc\n\n";
            $nbytes += length($doc) + 2;
            $ndocs++;
        }
    }
}
close($tr) or die; close($ho) or die; close($hs) or die;
print STDERR "wrap_corpus: $ndocs training documents, $nbytes bytes\n";
